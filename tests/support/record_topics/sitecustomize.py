"""Record every CreateTopics request a process makes (and the processes it spawns).

On PYTHONPATH with `RECORD_CREATE_TOPICS=<file>` set, Python imports this at start-up and wraps
`confluent_kafka.admin.AdminClient.create_topics`, the call every topic creation of Quix
Streams and of the pipelines goes through on a plain broker: each requested topic is appended
to the file as one JSON line (pid, topic, partitions, replication factor, configs), then the
request goes to the broker unchanged. The broker is real; only the request is read.
"""

from __future__ import annotations

import json
import os

_PATH = os.environ.get("RECORD_CREATE_TOPICS")

if _PATH:
    from confluent_kafka.admin import AdminClient

    _create_topics = AdminClient.create_topics

    def _recording_create_topics(self, new_topics, *args, **kwargs):
        with open(_PATH, "a", encoding="utf-8") as out:
            for topic in new_topics:
                line = {
                    "pid": os.getpid(),
                    "topic": topic.topic,
                    "partitions": topic.num_partitions,
                    "replication_factor": topic.replication_factor,
                    "config": dict(topic.config or {}),
                }
                out.write(json.dumps(line) + "\n")
        return _create_topics(self, new_topics, *args, **kwargs)

    AdminClient.create_topics = _recording_create_topics
