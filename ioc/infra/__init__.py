"""Local infrastructure: the Kafka broker and PostgreSQL cluster the project runs itself.

When ``KAFKA_BOOTSTRAP_SERVERS`` or ``DATABASE_URL`` is set, that service is external and
nothing is started for it.
"""

from ioc.infra.kafka import KafkaBroker
from ioc.infra.postgres import PostgresCluster

__all__ = ["KafkaBroker", "PostgresCluster"]
