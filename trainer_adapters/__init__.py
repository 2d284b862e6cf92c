"""spard.trainer_adapters: glue that turns SPARD on inside TRL, verl, OpenRLHF and ms-swift."""
