"use strict";
function schemaText(schema, components) {
  const ref = schema && schema.$ref && schema.$ref.split("/").pop();
  return JSON.stringify(ref ? components[ref] : schema, null, 2);
}
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  const root = document.getElementById("operations");
  root.replaceChildren();
  const components = doc.components.schemas;
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const box = document.createElement("details");
      box.className = "op";
      const summary = document.createElement("summary");
      const verb = document.createElement("span");
      verb.className = "method";
      verb.textContent = method.toUpperCase();
      summary.append(verb, `${path} — ${op.summary || ""}`);
      box.append(summary);
      for (const param of op.parameters || []) {
        const p = document.createElement("p");
        p.textContent = `${param.in} parameter ${param.name}${param.required ? " (required)" : ""}: ${param.description || ""}`;
        box.append(p);
      }
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) {
        const pre = document.createElement("pre");
        pre.textContent = "Request body:\n" + schemaText(body.schema, components);
        pre.tabIndex = 0; // a region that scrolls sideways on a phone: reachable by keyboard
        pre.setAttribute("aria-label", `Request body of ${method.toUpperCase()} ${path}`);
        box.append(pre);
      }
      for (const [code, response] of Object.entries(op.responses || {})) {
        const p = document.createElement("p");
        p.textContent = `${code}: ${response.description}`;
        box.append(p);
      }
      root.append(box);
    }
  }
  root.setAttribute("aria-busy", "false");
}).catch(() => {
  const root = document.getElementById("operations");
  root.textContent = "The API document (/openapi.json) could not be loaded. Reload the page to try again.";
  root.setAttribute("aria-busy", "false");
});
