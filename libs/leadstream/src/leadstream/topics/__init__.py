"""The topic catalog as code, and :func:`apply` to make a cluster match it.

Every topic LeadStream uses is declared in :data:`CATALOG` (logical name, schema, key,
producers, consumers, retention class); partitions, replication and ``min.insync.replicas``
come from :class:`TopicSettings`; physical names get ``Settings.topic_prefix``.
"""

from leadstream.topics.admin import admin_client, apply, observe, plan
from leadstream.topics.catalog import CATALOG, DLQ_STAGES, dlq_topic, schema_topics, topic
from leadstream.topics.diff import diff
from leadstream.topics.errors import TopicAdminError, TopicError, UnknownTopicError
from leadstream.topics.report import Action, ApplyReport, Change, Drift, ObservedTopic
from leadstream.topics.settings import TopicSettings
from leadstream.topics.spec import Kind, TopicPlan, TopicSpec

__all__ = [
    "CATALOG",
    "DLQ_STAGES",
    "Action",
    "ApplyReport",
    "Change",
    "Drift",
    "Kind",
    "ObservedTopic",
    "TopicAdminError",
    "TopicError",
    "TopicPlan",
    "TopicSettings",
    "TopicSpec",
    "UnknownTopicError",
    "admin_client",
    "apply",
    "diff",
    "dlq_topic",
    "observe",
    "plan",
    "schema_topics",
    "topic",
]
