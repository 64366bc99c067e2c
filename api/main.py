"""ASGI entry point for uvicorn workers: ``uvicorn api.main:app`` (settings from the environment)."""

from api.app import create_app
from pathway.bootstrap import bootstrap

app = create_app(bootstrap(serving=True))
