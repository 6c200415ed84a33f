"""The incident tier: alert transitions correlated by place and event time into incidents.

A Faust app of its own (``ioc incidents``) re-keys ``ioc.alerts`` by commune and by zone,
keeps each place's alerts in Faust tables, applies the correlation rules of
``seeds/correlation/`` and publishes incident transitions on ``ioc.incidents``
(``streams.incidents.events``); the sink stores them (``streams.incidents.store``) and
operators work them through the SOPs of ``seeds/sops/`` (``streams.incidents.sops``).
"""
