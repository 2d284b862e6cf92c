"""The HTTP shell over the run layer: the FastAPI app, its routes, authentication, metrics
and the mapping of errors to responses. Requests are decoded here (with the models of
:mod:`spard.service.protocol`) and handed to :mod:`spard.service.runs`."""
