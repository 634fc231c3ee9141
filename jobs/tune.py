"""Example entrypoint: `ray job submit --working-dir . -- python jobs/tune.py --config configs/tune.yaml`.

A thin wrapper over the packaged job `python -m raymlops.jobs.tune` (what `raymlops tune` submits);
copy it into your project to add steps around the job.
"""

import sys

from raymlops.jobs.tune import main

if __name__ == "__main__":
    sys.exit(main())
