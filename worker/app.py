"""The one Celery app. Reads its broker from the settings: Redis when CELERY_BROKER_URL is set, otherwise
the embedded broker, a SQLite file under HW3_DATA (Kombu's SQLAlchemy transport)."""
from __future__ import annotations

from celery import Celery

from shared.settings import Settings, get_settings

QUEUE = "hw3"
# the two tasks, the same for every job kind (the kind is read from the job): see worker/tasks.py
TRAIN_TASK = "hw3.train_run"
FINALIZE_TASK = "hw3.finalize"


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("hw3", include=["worker.tasks"])
    transport_options: dict = {}
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        transport_options = {"connect_args": {"timeout": 60}}
    else:
        # an unacknowledged task comes back only after this long: longer than any task may run
        transport_options = {"visibility_timeout": settings.task_time_limit + 600}
    app.conf.update(
        broker_url=settings.effective_broker_url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_serializer="json",
        accept_content=["json"],  # a pickled message is refused
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,  # outcomes live in the store, not in a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.soft_time_limit,  # raises in the task: the run fails with the reason
        # a worker publishing the next task while the broker restarts keeps trying for about 5 minutes
        task_publish_retry_policy={"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 5},
        worker_hijack_root_logger=False,
        worker_proc_alive_timeout=120,  # pool processes read the MNIST file as they start
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    return app


app = make_app()
