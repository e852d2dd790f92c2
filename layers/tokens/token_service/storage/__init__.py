"""Storage: DynamoDB (keys, indexes, expressions, attribute values) and the other AWS calls the domain needs."""
