"""A job kind that exists only in the tests: two runs of a few made-up epochs, no data and no training.

It is loaded by name (HW3_KINDS=tests.toykind) in the CLI and worker processes of the tests, which is how the
contract proves that a new kind needs no edit to any other module.
"""
from __future__ import annotations

import time

from worker.kinds.base import JobContext, JobFailed, JobKind, Option, Plan, RunContext, RunSpec


class Toy(JobKind):
    name = "toy"
    title = "A toy kind"
    help = "Two runs of made-up epochs (a test of the job-kind contract)."
    options = (
        Option("epochs", "epochs per run", int, default=3),
        Option("rates", "one made-up learning rate per run", float, csv=True, default="0.1,0.2"),
        Option("fail", "make the run with this name fail"),
        Option("pause", "seconds each epoch takes", float, default=0.0),
    )
    result_keys = ("best_run", "best_val_accuracy")

    def plan(self, params: dict) -> Plan:
        epochs = params.get("epochs") or 3
        rates = params.get("rates") or [0.1, 0.2]
        if not 1 <= epochs <= 20:
            raise ValueError(f"epochs must be in 1..20, got {epochs}")
        stored = {"epochs": epochs, "fail": params.get("fail"), "pause": params.get("pause") or 0.0}
        return Plan(stored, [RunSpec(f"toy-{r:g}", {"rate": r}, epochs) for r in rates])

    def train(self, ctx: RunContext) -> dict:
        if ctx.run.name == ctx.job.params["fail"]:
            raise RuntimeError(f"{ctx.run.name} was asked to fail")
        rate = ctx.run.config["rate"]
        acc = 0.0
        for epoch in range(1, ctx.job.params["epochs"] + 1):
            time.sleep(ctx.job.params["pause"])
            acc = 1 - 0.5 / (1 + rate * epoch)
            ctx.record_epoch({"epoch": epoch, "lr": rate, "train_loss": 1 - acc, "train_accuracy": acc,
                              "val_loss": 1.1 - acc, "val_accuracy": acc - 0.01, "seconds": 0.01})
            if ctx.should_stop():
                return None
        (ctx.run_dir / "toy.txt").write_text(f"{acc}\n")
        return {"val_accuracy": acc - 0.01}

    def finalize(self, ctx: JobContext) -> dict:
        done = {r.name: r.result["val_accuracy"] for r in ctx.job.runs if r.state == "succeeded"}
        if not done:
            raise JobFailed("no toy run succeeded")
        best = max(done, key=done.get)
        return {"best_run": best, "best_val_accuracy": done[best], "all": done, "rows": len(ctx.rows())}

    def report(self, job, rows) -> str:
        lines = [f"# {self.title} (job `{job.job_id}`)", "", f"State: **{job.state}**", ""]
        if job.result:
            lines.append(f"Best run: {job.result['best_run']} ({job.result['best_val_accuracy']:.4f}), "
                         f"from {len(rows)} epoch rows.")
        return "\n".join(lines) + "\n"


KIND = Toy()
