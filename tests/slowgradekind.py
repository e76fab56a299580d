"""A grading kind that exists only in the tests: `grade mnist`, except that evaluating a file whose name holds
"slow" never ends. Loaded by name (HW3_KINDS=tests.slowgradekind) in the CLI and a real worker, it proves that the
per-file time limit fires inside a real Celery pool process and that the file fails alone."""
from __future__ import annotations

from worker.kinds.grade import GradeMnist


class SlowGrade(GradeMnist):
    name = "grade-slow"
    command = ("grade", "slow")
    help = "grade mnist, with a never-ending evaluation of files named *slow*"

    def grade(self, path, x, y, threads):
        while "slow" in path.name:  # pure Python: SIGALRM's handler runs between two bytecodes
            pass
        return super().grade(path, x, y, threads)


KIND = SlowGrade()
