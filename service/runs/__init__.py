"""The run layer: every run operation over a store, exactly once, with no HTTP in it.

:class:`~spard.service.runs.run_service.RunService` creates, reads, steps (compare-and-set on
the run's etag), exports, imports and deletes runs;
:class:`~spard.service.runs.observation_service.ObservationService` turns streamed
observations into steps; :mod:`spard.service.runs.store` holds them in memory or in Redis.
The FastAPI app (:mod:`spard.service.http`) and the SDK's local mode are both shells over it.
"""
