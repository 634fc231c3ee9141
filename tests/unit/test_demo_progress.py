"""The demo's job-log echo: epoch lines move the step's progress bar, only chosen lines are shown."""

from raymlops.cli import demo


def test_epoch_lines_move_the_bar_and_only_marked_lines_are_echoed(monkeypatch):
    shown, reports = [], []
    monkeypatch.setattr(demo.console(), "print", lambda text, **_: shown.append(text.strip()))
    ctx = demo.DemoContext()
    ctx.report = lambda done, total=None: reports.append((done, total))
    echo = demo._job_log_echo(ctx)
    echo("\x1b[36m(RayTrainWorker pid=1)\x1b[0m [raymlops] epoch 3/10  loss 0.41\n"
         "INFO worker.py:1 -- noise\n"
         "registered penguins:2  accuracy=0.97\n")
    assert reports == [(3, 10)]
    assert shown == ["(RayTrainWorker pid=1) [raymlops] epoch 3/10  loss 0.41", "registered penguins:2  accuracy=0.97"]


def test_a_step_progress_pulses_until_it_gets_a_total_and_is_gone_after_the_step():
    step = demo.StepProgress("[1/9] a step")
    task = step.progress.tasks[0]
    assert task.total is None  # pulsing
    with step as report:
        assert step.progress.live.is_started
        report(5, 20)
    assert (task.completed, task.total) == (5, 20)
    assert not step.progress.live.is_started
