"""ms-swift external plugin that turns SPARD on: pass this file as ``--external_plugins``
(``python -m spard.trainer_adapters.swift`` prints its path). Settings: ``SPARD_*``
environment variables (see :mod:`spard.trainer_adapters.swift`)."""

from spard.trainer_adapters.swift import install

install()
