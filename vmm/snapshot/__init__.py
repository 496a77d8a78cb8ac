"""Machine state: what a whole machine is at one instruction (:mod:`.state`), and its
files on disk (:mod:`.statefile`: ``NAME.vmsn`` + ``NAME.vmem``)."""
