"""Creates the registry's topics idempotently, with their configs."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from grim_schemas.topics import TOPICS, TopicSpec


@dataclass(frozen=True)
class TopicResult:
    name: str
    partitions: int
    created: bool
    note: str = ""


async def create_topics(
    bootstrap: str,
    namespace: str = "",
    specs: list[TopicSpec] | None = None,
    replication_factor: int = 1,
) -> list[TopicResult]:
    specs = specs if specs is not None else list(TOPICS.values())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="grim-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        results: list[TopicResult] = []
        missing = [s for s in specs if s.name(namespace) not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=s.name(namespace),
                        num_partitions=s.partitions,
                        replication_factor=replication_factor,
                        topic_configs=s.config(replication_factor),
                    )
                    for s in missing
                ]
            )
            errors = {
                name: (code, msg)
                for name, code, *rest in response.topic_errors
                for msg in [rest[0] if rest else ""]
            }
            for spec in missing:
                code, msg = errors.get(spec.name(namespace), (0, ""))
                if code and code != TopicAlreadyExistsError.errno:
                    raise RuntimeError(f"creating {spec.name(namespace)} failed: {code} {msg}")
        for spec in specs:
            results.append(
                TopicResult(
                    spec.name(namespace),
                    spec.partitions,
                    created=spec in missing,
                    note="" if spec in missing else "exists",
                )
            )
        return results
    finally:
        await admin.close()
