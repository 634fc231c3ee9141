"""Prediction requests answered ahead of FastAPI's router (raymlops.serve.fast_routes)."""

from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from raymlops.serve import fast_routes
from raymlops.serve.fast_routes import ServerApp, fast_route


def scope(path: str, method: str = "POST", root_path: str = "/churn") -> dict:
    return {"type": "http", "method": method, "path": root_path + path, "root_path": root_path}


def test_the_prediction_routes_below_the_route_prefix_are_answered_ahead():
    assert fast_route(scope("/v2/models/churn/infer")) == ("infer", {"name": "churn"})
    assert fast_route(scope("/v2/models/churn/versions/3/infer")) == ("infer_version", {"name": "churn", "version": "3"})
    assert fast_route(scope("/v1/models/churn/predict", root_path="")) == ("predict", {"name": "churn"})


def test_everything_else_goes_to_fastapi():
    for path, method in (("/v2/models/churn/infer", "GET"), ("/v2/models/churn/infer/", "POST"),
                         ("/v2/models/a/b/infer", "POST"), ("/v1/models/churn/feedback", "POST"),
                         ("/v2/models/churn", "POST"), ("/v2/models//infer", "POST")):
        assert fast_route(scope(path, method)) is None, (path, method)
    assert fast_route({"type": "websocket", "path": "/v2/models/churn/infer", "method": "POST"}) is None


class Server:
    """Stands in for the replica's deployment instance."""

    def __init__(self) -> None:
        self.calls: list = []

    async def infer(self, name: str, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append((name, request.headers.get("x-api-key"), body))
        return JSONResponse({"answered": name}, headers={"x-answer": "fast"})


def app_with_fastapi_route() -> ServerApp:
    app = ServerApp()

    @app.post("/v2/models/{name}/infer")
    async def through_fastapi(name: str) -> dict:
        return {"answered": name, "by": "fastapi"}

    return app


def test_in_a_replica_the_handler_answers_without_fastapi(monkeypatch):
    server = Server()
    monkeypatch.setattr(fast_routes, "servable", lambda: server)
    client = TestClient(app_with_fastapi_route(), root_path="/churn")
    response = client.post("/churn/v2/models/churn/infer", json={"inputs": []}, headers={"x-api-key": "k"})
    assert response.status_code == 200 and response.json() == {"answered": "churn"}
    assert response.headers["x-answer"] == "fast"
    assert server.calls == [("churn", "k", {"inputs": []})]


def test_outside_a_replica_fastapi_answers():
    client = TestClient(app_with_fastapi_route())
    response = client.post("/v2/models/churn/infer", json={})
    assert response.json() == {"answered": "churn", "by": "fastapi"}
    assert client.get("/v2/models/churn/infer").status_code == 405
