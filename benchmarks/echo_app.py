"""The floor of the service benchmark: a bare FastAPI endpoint that echoes the body it gets."""

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")
