"""Ray job entrypoints, installed with the package: run them with ``python -m raymlops.jobs.NAME``.

``train``, ``tune``, ``monitor`` and ``score`` each parse ``--config FILE`` and ``--set KEY=VALUE``,
load their config (``configs/<kind>.yaml`` in the working directory, else the packaged default)
and call one library function; ``command`` runs a raymlops CLI command on the cluster for a
client that only reaches the cluster's addresses::

    ray job submit --working-dir . -- python -m raymlops.jobs.train --config configs/train.yaml
"""
