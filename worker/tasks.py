"""Thin Celery tasks: load inputs, call plain Python (worker.sweep, worker.keras_jobs), let the store record results."""
from __future__ import annotations

import os
from functools import lru_cache

from celery.signals import worker_process_init

from shared import datasets
from shared.settings import available_cores, get_settings
from shared.store import Store
from worker import keras_jobs, sweep
from worker.app import app


@lru_cache(maxsize=1)
def _store_for(pid: int, url: str) -> Store:  # one engine per process: connections never cross a fork
    return Store(url)


def store() -> Store:
    return _store_for(os.getpid(), get_settings().database_url)


@worker_process_init.connect
def _warm_up(**_) -> None:
    """Open the store and read the MNIST training file as a pool process starts, so that the first task's
    first epoch is not delayed by them (a missing or bad file is reported by the task that needs it)."""
    settings = get_settings()
    store()
    if (settings.datasets_dir / datasets.MNIST_TRAIN_FILE).is_file():
        try:
            sweep.mnist_train_file(str(settings.datasets_dir))
        except datasets.DatasetError:
            pass


@app.task(name="hw3.sweep.train_run", bind=True)
def train_sweep_run(self, run_id: int) -> None:
    if sweep.train_run(store(), get_settings(), run_id, self.request.hostname, sweep.default_threads()):
        finalize_sweep.delay(store().run_info(run_id)["job_id"])


@app.task(name="hw3.sweep.finalize", bind=True)
def finalize_sweep(self, job_id: str) -> None:
    # the retrain runs alone once the sweep has drained: give it every core unless this host is still busy
    busy = store().running_on(self.request.hostname)
    threads = available_cores() if busy == 0 else sweep.default_threads()
    sweep.finalize(store(), get_settings(), job_id, self.request.hostname, threads)


@app.task(name="hw3.keras.train_run", bind=True)
def train_keras_run(self, run_id: int) -> None:
    if keras_jobs.train_run(store(), get_settings(), run_id, self.request.hostname, sweep.default_threads()):
        finalize_keras.delay(store().run_info(run_id)["job_id"])


@app.task(name="hw3.keras.finalize")
def finalize_keras(job_id: str) -> None:
    keras_jobs.finalize(store(), get_settings(), job_id)
