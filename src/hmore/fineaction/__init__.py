"""Fine-grained action recognition fed by flow (issue 15): a generated set of arm-gesture variants that appearance and
coarse pose cannot tell apart (:mod:`hmore.fineaction.data`), the ``action_flow`` training task and the benchmark."""
