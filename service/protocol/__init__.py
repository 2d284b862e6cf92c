"""The API's documents, shared by the service and the SDK: request models, the binary step
body, the records the service returns, and the one table of error statuses. No I/O, no web
framework: the SDK imports this with the light install."""
