"""The alert service: the webhook receiver and its metrics, the worker pool (or Celery
workers in distributed mode) draining the index's queue, the incident pages, and `doctor`."""
