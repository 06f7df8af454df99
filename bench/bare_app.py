"""The ceiling for bench/ingest: Starlette on uvicorn as `callpulse serve` runs them, no storage.

Reads the body of a callback and answers 200; also serves /healthz so the runner can wait for it.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def callback(request: Request) -> Response:
    await request.body()
    return Response('{"result": "inserted"}', media_type="application/json")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/callbacks/call-status", callback, methods=["GET", "POST"]),
        Route("/healthz", healthz),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    # The same uvicorn settings as `callpulse serve` with one worker.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
