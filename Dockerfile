# The raymlops image for Kubernetes (configs/k8s/) and any container-based Ray cluster:
#   docker build -t raymlops:0.1.0-cpu .
#   docker build --build-arg FLAVOR=gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 \
#                -t raymlops:0.1.0-gpu .
# Ray's own image with the same Ray and Python as constraints.txt; raymlops installed with
# the pinned set, the repo's jobs/ and configs/ at /home/ray/raymlops (the working dir).
ARG FLAVOR=cpu
FROM rayproject/ray:2.60.0-py311-${FLAVOR}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /home/ray/raymlops
COPY --chown=ray:users pyproject.toml constraints.txt README.md ./
COPY --chown=ray:users raymlops ./raymlops
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" -c constraints.txt '.[postgres,s3]'
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users configs ./configs
