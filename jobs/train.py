"""Example entrypoint: `ray job submit --working-dir . -- python jobs/train.py --config configs/train.yaml`.

A thin wrapper over the packaged job `python -m raymlops.jobs.train` (what `raymlops train` submits);
copy it into your project to add steps around the job.
"""

import sys

from raymlops.jobs.train import main

if __name__ == "__main__":
    sys.exit(main())
