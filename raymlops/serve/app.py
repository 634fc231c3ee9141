"""The typed Serve application builder, usable from a Serve config file:

    applications:
      - name: penguins
        import_path: raymlops.serve.app:build_app
        args: {model_name: penguins}
        deployments:
          - name: ModelServer
            user_config: {stable_version: 1, canary_version: 2, canary_weight: 0.1}

``serve deploy that.yaml`` and ``raymlops deploy`` produce the same application. With
``layout: separate`` (and ``versions: [1, 2]``) each version gets its own deployment
``Version<n>`` behind the ``ModelServer`` router.
"""

from __future__ import annotations

from typing import Any

from raymlops.serve.args import AppArgs

__all__ = ["AppArgs", "build_app"]


def build_app(args: AppArgs | dict):
    """The model server application for one model, in the configured layout."""
    from raymlops.config import RegistryConfig
    from raymlops.serve.control import version_deployment
    from raymlops.serve.model import VersionModel
    from raymlops.serve.server import ModelServer

    if isinstance(args, dict):
        args = AppArgs.model_validate(args)
    updates: dict[str, Any] = {"registry": RegistryConfig.model_validate(args.registry).model_dump(mode="json")}
    if args.admin_token_sha256 is None:
        from raymlops import auth
        from raymlops.serve.access import digest

        token = auth.read_admin_token()
        updates["admin_token_sha256"] = digest(token) if token else None
    args = args.model_copy(update=updates)
    settings = args.model_dump(mode="json")
    server: Any = ModelServer  # Serve's decorators made these deployments; type checkers see the classes
    version_model: Any = VersionModel
    if args.layout == "colocated":
        return server.bind(settings)
    if not args.versions:
        raise ValueError("layout `separate` needs `versions`: the versions that get a deployment")
    handles = {version: version_model.options(name=version_deployment(version)).bind(
        args.model_name, version, settings["registry"], settings["batching"], args.environment.on_mismatch,
        args.access.trusted_modules)
        for version in args.versions}
    return server.bind(settings, handles)
