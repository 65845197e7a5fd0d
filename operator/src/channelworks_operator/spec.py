"""The RealtimeApp spec, parsed once into frozen dataclasses (pure: no I/O, no kopf).

The CRD's schema (charts/channelworks/crds/) rejects malformed manifests at the API server and
fills in defaults there. ``parse`` applies the same defaults (an object stored before a default
was added, or a unit test's dict, gets the same meaning) and checks the same cross-field rules
again, raising ``InvalidSpec`` with the field's path when the operator cannot honour a value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The resource's names are the SDK's (defined once there, for the channelworks command too).
from channelworks.realtimeapp import API_VERSION as API_VERSION
from channelworks.realtimeapp import GROUP as GROUP
from channelworks.realtimeapp import KIND as KIND
from channelworks.realtimeapp import PLURAL as PLURAL
from channelworks.realtimeapp import VERSION as VERSION
from channelworks_operator.exceptions import InvalidSpec

AUTOSCALING_MODES = ("builtin", "keda", "hpa")
REDIS_MODES = ("cluster", "standalone", "external")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
MONITOR_KINDS = ("PodMonitor", "ServiceMonitor")
RETENTION = ("Retain", "Delete")
# The queue-depth series the operator exports per app and channel (channelworks.layers.metrics):
# what KEDA's default query and the HPA's default external metric read.
QUEUE_DEPTH_METRIC = "channelworks_layer_queue_depth"
OLDEST_AGE_METRIC = "channelworks_layer_oldest_message_age_seconds"
# The same per worker pool (label ``pool``), which a pool's ScaledObject or HPA reads.
POOL_QUEUE_DEPTH_METRIC = "channelworks_operator_pool_queue_depth"
POOL_OLDEST_AGE_METRIC = "channelworks_operator_pool_oldest_message_age_seconds"
# The WebSockets open over an app's interface pods, as the operator last read them.
CONNECTIONS_METRIC = "channelworks_operator_interface_connections"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESERVED_ENV = frozenset(
    {
        "CHANNELWORKS_APP",
        "CHANNELWORKS_REDIS_MODE",
        "CHANNELWORKS_REDIS_URL",
        "CHANNELWORKS_REDIS_PASSWORD",
        "DJANGO_SETTINGS_MODULE",
    }
)
# The connections one interface process takes before it answers 503
# (channelworks_interface.config.DEFAULT_MAX_CONNECTIONS; a test keeps them equal), unless
# spec.interface.env sets this variable.
INTERFACE_MAX_CONNECTIONS = 10_000
INTERFACE_MAX_CONNECTIONS_ENV = "CHANNELWORKS_INTERFACE_MAX_CONNECTIONS"
MAX_NAME_LENGTH = 46
MAX_CLUSTER_NODES = 128
DEFAULT_SHARDS = 3
DEFAULT_REPLICAS_PER_SHARD = 1
# Work shards per normal channel of the layer (channelworks.layers.config.DEFAULT_SHARDS; a test
# keeps them equal) and the most the layer takes.
DEFAULT_WORK_SHARDS = 16
MAX_WORK_SHARDS = 1024
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_URL = re.compile(r"^(redis|rediss|redis\+cluster|rediss\+cluster)://\S+$")
_URL_USERINFO = re.compile(r"^[a-z+]+://[^/@]*@")
# The pods' metrics and probe port (builders.meta.METRICS_PORT): the interface cannot take it.
METRICS_PORT = 9100
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Worker pools: names (a label value and a Deployment name suffix) and the channels they take.
MAX_POOLS = 16
MAX_POOL_NAME_LENGTH = 20
CHANNEL_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,99}$")
# The worker's channel filters: a pool sets them, so the environment cannot.
POOL_ENV = frozenset({"CHANNELWORKS_WORKER_CHANNELS", "CHANNELWORKS_WORKER_EXCLUDE_CHANNELS"})

Json = Any  # a JSON value taken from the manifest as it is (resources, tolerations, env...)


@dataclass(frozen=True)
class AppRef:
    """Who the app is: what owner references and labels are made of."""

    name: str
    namespace: str
    uid: str
    generation: int

    @property
    def prefix(self) -> str:
        """The channel layer's key prefix, ``CHANNELWORKS_APP``: ``<namespace>.<name>``."""
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class Placement:
    """Where and how pods are scheduled; copied to the pod template as given."""

    annotations: tuple[tuple[str, str], ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Json, ...] = ()
    affinity: Json = None


@dataclass(frozen=True)
class InterfaceAutoscalingSpec:
    """``spec.interface.autoscaling``: interface pods follow the open WebSockets and the CPU
    the interface processes use (mode builtin: the operator; keda/hpa: a ScaledObject/HPA)."""

    enabled: bool = False
    min_replicas: int = 2
    max_replicas: int = 10
    target_connections: int = 1000
    scale_down_stabilization_seconds: int = 300
    poll_interval_seconds: int = 15
    mode: str = "builtin"
    # Average CPU per interface process, in percent of one core (the process uses one).
    target_cpu_percent: int = 70
    prometheus_address: str | None = None  # mode keda: where the connection count is read
    metric_name: str | None = None  # mode hpa: the external metric of the connection count


@dataclass(frozen=True)
class InterfaceSpec:
    image: str | None
    replicas: int
    port: int
    grace_seconds: int
    service_type: str
    service_annotations: tuple[tuple[str, str], ...]
    env: tuple[Json, ...]
    resources: Json
    placement: Placement
    autoscaling: InterfaceAutoscalingSpec = InterfaceAutoscalingSpec()


def interface_connection_limit(interface: InterfaceSpec) -> int:
    """The connections one interface pod takes: ``CHANNELWORKS_INTERFACE_MAX_CONNECTIONS`` from
    ``spec.interface.env`` when given as a number, else the interface's default."""
    for item in interface.env:
        value = item.get("value")
        ours = item.get("name") == INTERFACE_MAX_CONNECTIONS_ENV
        if ours and isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return INTERFACE_MAX_CONNECTIONS


@dataclass(frozen=True)
class AutoscalingSpec:
    enabled: bool
    mode: str
    min_replicas: int
    max_replicas: int
    target_queue_depth: int
    target_oldest_age_seconds: int
    scale_down_stabilization_seconds: int
    poll_interval_seconds: int
    metric_name: str
    prometheus_address: str | None
    prometheus_query: str | None


@dataclass(frozen=True)
class WorkerSpec:
    replicas: int
    concurrency: int
    grace_seconds: int
    autoscaling: AutoscalingSpec
    resources: Json
    placement: Placement


@dataclass(frozen=True)
class WorkerPool:
    """One set of workers (one Deployment) that takes some channels of the app.

    ``name`` None is the app without ``spec.workerPools``: one pool, every routed channel, the
    Deployment ``<app>-worker`` as before pools existed. A pool with ``channels`` takes those;
    the one without takes every other channel (``exclude`` lists what it leaves out, which is
    also every channel another pool takes)."""

    name: str | None
    channels: tuple[str, ...]
    exclude: tuple[str, ...]
    image: str | None
    settings_module: str | None
    worker: WorkerSpec

    def takes(self, channel: str) -> bool:
        if self.channels:
            return channel in self.channels
        return channel not in self.exclude


@dataclass(frozen=True)
class StorageSpec:
    ephemeral: bool
    size: str
    storage_class: str | None
    when_deleted: str
    when_scaled: str


@dataclass(frozen=True)
class RedisSpec:
    mode: str
    shards: int
    replicas_per_shard: int
    url: str | None
    password_ref: SecretKeyRef | None
    image: str | None
    resources: Json
    storage: StorageSpec

    @property
    def managed(self) -> bool:
        """True when the operator runs this Redis (modes cluster and standalone)."""
        return self.mode != "external"

    @property
    def nodes(self) -> int:
        """Redis pods the operator runs: shards x (1 + replicas), 1, or 0 for external."""
        if self.mode == "cluster":
            return self.shards * (1 + self.replicas_per_shard)
        return 1 if self.mode == "standalone" else 0


@dataclass(frozen=True)
class ChannelLayerSpec:
    capacity: int
    expiry: int
    redis: RedisSpec
    # spec.channelLayer.workShards; None: the layer's default (no variable is set).
    work_shards: int | None = None
    # The count when workShards is left out (auto_work_shards of the pools).
    auto_shards: int = DEFAULT_WORK_SHARDS

    @property
    def shards(self) -> int:
        """Work shards per channel the operator keeps the layer at (online changes): at most
        this many workers of one pool have work."""
        return self.work_shards or self.auto_shards


@dataclass(frozen=True)
class MonitoringSpec:
    enabled: bool
    kind: str
    interval: str
    labels: tuple[tuple[str, str], ...]


# What the migration Job runs when spec.django.migrate.command is not given: Django's own
# ``migrate`` (``python -m django`` is manage.py without the file: it reads the same
# DJANGO_SETTINGS_MODULE the workers run with, from the spec or the image).
DEFAULT_MIGRATE_COMMAND = ("python", "-m", "django", "migrate", "--noinput")


@dataclass(frozen=True)
class MigrateSpec:
    """``spec.django.migrate``: run the migrations as a Job with a new image before it rolls."""

    enabled: bool = True
    command: tuple[str, ...] = DEFAULT_MIGRATE_COMMAND
    timeout_seconds: int = 600
    ttl_seconds_after_finished: int = 3600


@dataclass(frozen=True)
class App:
    """One RealtimeApp, with every default applied."""

    ref: AppRef
    image: str
    image_pull_policy: str | None
    image_pull_secrets: tuple[str, ...]
    service_account: str | None
    settings_module: str | None
    django_env: tuple[Json, ...]
    django_env_from: tuple[Json, ...]
    interface: InterfaceSpec
    worker: WorkerSpec
    channel_layer: ChannelLayerSpec
    network_policy: bool
    monitoring: MonitoringSpec
    adopt_existing: bool = False
    migrate: MigrateSpec = MigrateSpec()
    # spec.django.secretKeySecretRef: where DJANGO_SECRET_KEY is (None: the operator makes one).
    django_secret_key: SecretKeyRef | None = None
    worker_pools: tuple[WorkerPool, ...] = ()

    @property
    def pools(self) -> tuple[WorkerPool, ...]:
        """The worker pools: ``spec.workerPools``, or the one default pool of ``spec.worker``."""
        if self.worker_pools:
            return self.worker_pools
        return (WorkerPool(None, (), (), None, self.settings_module, self.worker),)


def auto_work_shards(pools: Sequence[WorkerPool]) -> int:
    """The work shards of an app without ``spec.channelLayer.workShards``: one per worker the
    largest pool may run (its ``maxReplicas`` when autoscaled, else ``replicas``), rounded up to
    a power of two (so a change of the count doubles or halves it and each new shard shares its
    connections with one old shard, or a few), at least 16, at most 1024."""
    most = max(
        (
            pool.worker.autoscaling.max_replicas
            if pool.worker.autoscaling.enabled
            else pool.worker.replicas
        )
        for pool in pools
    )
    shards = DEFAULT_WORK_SHARDS
    while shards < most and shards < MAX_WORK_SHARDS:
        shards *= 2
    return shards


class _Fields:
    """Typed access to one mapping of the manifest; errors name the field's full path."""

    def __init__(self, data: Any, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InvalidSpec(path, f"must be an object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def sub(self, key: str) -> _Fields:
        return _Fields(self.data.get(key), f"{self.path}.{key}")

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSpec(self._at(key), f"must be an integer, got {value!r}")
        if not minimum <= value <= maximum:
            raise InvalidSpec(self._at(key), f"must be from {minimum} to {maximum}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise InvalidSpec(self._at(key), f"must be true or false, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise InvalidSpec(self._at(key), f"must be a string, got {value!r}")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise InvalidSpec(self._at(key), "is required")
        return value

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self.text(key, default)
        if value is None or value not in allowed:
            raise InvalidSpec(self._at(key), f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def quantity(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidSpec(self._at(key), f"must be a quantity such as 1Gi, got {value!r}")
        return str(value)

    def string_map(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.data.get(key) or {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise InvalidSpec(self._at(key), "must map strings to strings")
        return tuple(sorted(value.items()))

    def objects(self, key: str) -> tuple[Json, ...]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise InvalidSpec(self._at(key), "must be a list of objects")
        return tuple(dict(item) for item in value)

    def json_object(self, key: str) -> Json:
        value = self.data.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise InvalidSpec(self._at(key), "must be an object")
        return None if value is None else dict(value)


def _placement(fields: _Fields) -> Placement:
    return Placement(
        annotations=fields.string_map("podAnnotations"),
        node_selector=fields.string_map("nodeSelector"),
        tolerations=fields.objects("tolerations"),
        affinity=fields.json_object("affinity"),
    )


def _env(fields: _Fields, key: str) -> tuple[Json, ...]:
    env = fields.objects(key)
    for index, item in enumerate(env):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidSpec(f"{fields.path}.{key}[{index}].name", "is required")
        if name in RESERVED_ENV:
            raise InvalidSpec(
                f"{fields.path}.{key}[{index}].name",
                f"{name} is set by the operator and cannot be given here",
            )
    return env


def _interface(fields: _Fields) -> InterfaceSpec:
    service = fields.sub("service")
    if fields.integer("port", 8000, 1024, 65535) == METRICS_PORT:
        raise InvalidSpec(
            f"{fields.path}.port",
            f"must not be {METRICS_PORT}: the pods serve metrics and probes on that port",
        )
    return InterfaceSpec(
        image=fields.text("image"),
        replicas=fields.integer("replicas", 2, 0, 1000),
        port=fields.integer("port", 8000, 1024, 65535),
        grace_seconds=fields.integer("terminationGracePeriodSeconds", 30, 15, 3600),
        service_type=service.choice("type", "ClusterIP", SERVICE_TYPES),
        service_annotations=service.string_map("annotations"),
        env=_env(fields, "env"),
        resources=fields.json_object("resources"),
        placement=_placement(fields),
        autoscaling=_interface_autoscaling(fields.sub("autoscaling")),
    )


def _min_not_over_max(fields: _Fields, low: int, high: int) -> None:
    if low > high:
        raise InvalidSpec(
            f"{fields.path}.minReplicas", f"must not be greater than maxReplicas ({low} > {high})"
        )


def _interface_autoscaling(fields: _Fields) -> InterfaceAutoscalingSpec:
    spec = InterfaceAutoscalingSpec(
        enabled=fields.boolean("enabled", False),
        min_replicas=fields.integer("minReplicas", 2, 1, 1000),
        max_replicas=fields.integer("maxReplicas", 10, 1, 1000),
        target_connections=fields.integer("targetConnectionsPerPod", 1000, 1, 1_000_000),
        scale_down_stabilization_seconds=fields.integer(
            "scaleDownStabilizationSeconds", 300, 0, 3600
        ),
        poll_interval_seconds=fields.integer("pollIntervalSeconds", 15, 2, 300),
        mode=fields.choice("mode", "builtin", AUTOSCALING_MODES),
        target_cpu_percent=fields.integer("targetCPUPercent", 70, 1, 100),
        prometheus_address=fields.sub("prometheus").text("serverAddress"),
        metric_name=fields.text("metricName"),
    )
    _min_not_over_max(fields, spec.min_replicas, spec.max_replicas)
    return spec


def _autoscaling(fields: _Fields) -> AutoscalingSpec:
    prometheus = fields.sub("prometheus")
    spec = AutoscalingSpec(
        enabled=fields.boolean("enabled", True),
        mode=fields.choice("mode", "builtin", AUTOSCALING_MODES),
        min_replicas=fields.integer("minReplicas", 1, 0, 1000),
        max_replicas=fields.integer("maxReplicas", 10, 1, 1000),
        target_queue_depth=fields.integer("targetQueueDepth", 100, 1, 1_000_000),
        target_oldest_age_seconds=fields.integer("targetOldestAgeSeconds", 10, 1, 3600),
        scale_down_stabilization_seconds=fields.integer(
            "scaleDownStabilizationSeconds", 120, 0, 3600
        ),
        poll_interval_seconds=fields.integer("pollIntervalSeconds", 15, 2, 300),
        metric_name=fields.text("metricName", QUEUE_DEPTH_METRIC) or QUEUE_DEPTH_METRIC,
        prometheus_address=prometheus.text("serverAddress"),
        prometheus_query=prometheus.text("query"),
    )
    _min_not_over_max(fields, spec.min_replicas, spec.max_replicas)
    if spec.mode == "hpa" and spec.min_replicas < 1:
        raise InvalidSpec(f"{fields.path}.minReplicas", "mode hpa cannot scale to zero")
    if spec.mode == "keda" and not spec.prometheus_address:
        raise InvalidSpec(f"{fields.path}.prometheus.serverAddress", "mode keda needs it")
    return spec


def _worker(fields: _Fields) -> WorkerSpec:
    return WorkerSpec(
        replicas=fields.integer("replicas", 1, 0, 1000),
        concurrency=fields.integer("concurrency", 16, 1, 1024),
        grace_seconds=fields.integer("terminationGracePeriodSeconds", 60, 10, 3600),
        autoscaling=_autoscaling(fields.sub("autoscaling")),
        resources=fields.json_object("resources"),
        placement=_placement(fields),
    )


def _channel_names(fields: _Fields, key: str) -> tuple[str, ...]:
    value = fields.data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSpec(f"{fields.path}.{key}", "must be a list of channel names")
    for item in value:
        if not CHANNEL_NAME.match(item):
            raise InvalidSpec(
                f"{fields.path}.{key}",
                f"{item!r} is not a channel name (letters, digits, '-', '_', '.'; under 100)",
            )
    return tuple(sorted(set(value)))


def _merged(defaults: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A pool's settings: its own over ``spec.worker``'s (autoscaling and its prometheus block
    merged key by key)."""
    merged = {**defaults, **override}
    autoscaling = override.get("autoscaling")
    inherited = defaults.get("autoscaling")
    if isinstance(autoscaling, Mapping) and isinstance(inherited, Mapping):
        merged["autoscaling"] = {**inherited, **autoscaling}
        prometheus = autoscaling.get("prometheus")
        if isinstance(prometheus, Mapping) and isinstance(inherited.get("prometheus"), Mapping):
            merged["autoscaling"]["prometheus"] = {**inherited["prometheus"], **prometheus}
    return merged


def _pool(item: Any, index: int, worker: _Fields, settings_module: str | None) -> WorkerPool:
    path = f"spec.workerPools[{index}]"
    fields = _Fields(item, path)
    name = fields.required_text("name")
    if len(name) > MAX_POOL_NAME_LENGTH or not _NAME.match(name):
        raise InvalidSpec(
            f"{path}.name",
            f"must be at most {MAX_POOL_NAME_LENGTH} lowercase letters, digits and '-', "
            "starting with a letter",
        )
    channels = _channel_names(fields, "channels")
    exclude = _channel_names(fields, "exclude")
    if channels and exclude:
        raise InvalidSpec(
            f"{path}.exclude",
            "applies only to a pool without channels (the pool that takes every other channel)",
        )
    own_settings = fields.text("settingsModule")
    if own_settings is not None and not _MODULE.match(own_settings):
        raise InvalidSpec(f"{path}.settingsModule", "must be a dotted Python module path")
    settings = {key: value for key, value in fields.data.items() if key in _POOL_WORKER_KEYS}
    return WorkerPool(
        name=name,
        channels=channels,
        exclude=exclude,
        image=fields.text("image"),
        settings_module=own_settings or settings_module,
        worker=_worker(_Fields(_merged(_pool_defaults(worker.data), settings), path)),
    )


def _pool_defaults(worker: Mapping[str, Any]) -> dict[str, Any]:
    """What a pool inherits of ``spec.worker``: everything but the metric a KEDA query or an
    HPA reads, which there means the whole app's queue; a pool's default is its own queue."""
    defaults = dict(worker)
    autoscaling = defaults.get("autoscaling")
    if isinstance(autoscaling, Mapping):
        autoscaling = {**autoscaling, "metricName": POOL_QUEUE_DEPTH_METRIC}
        prometheus = autoscaling.get("prometheus")
        if isinstance(prometheus, Mapping):
            autoscaling["prometheus"] = {k: v for k, v in prometheus.items() if k != "query"}
        defaults["autoscaling"] = autoscaling
    else:
        defaults["autoscaling"] = {"metricName": POOL_QUEUE_DEPTH_METRIC}
    return defaults


# What a pool may set of spec.worker's fields (the rest it shares with spec.worker).
_POOL_WORKER_KEYS = frozenset(
    {"replicas", "concurrency", "terminationGracePeriodSeconds", "autoscaling", "resources"}
)


def _pools(
    spec: _Fields, settings_module: str | None, env: tuple[Json, ...]
) -> tuple[WorkerPool, ...]:
    """``spec.workerPools``, checked: every channel is taken by exactly one pool."""
    items = spec.data.get("workerPools") or []
    if not isinstance(items, list):
        raise InvalidSpec("spec.workerPools", "must be a list of pools")
    if not items:
        return ()
    if len(items) > MAX_POOLS:
        raise InvalidSpec("spec.workerPools", f"at most {MAX_POOLS} pools, got {len(items)}")
    worker = spec.sub("worker")
    pools = [_pool(item, index, worker, settings_module) for index, item in enumerate(items)]
    names = [pool.name for pool in pools]
    for name in names:
        if names.count(name) > 1:
            raise InvalidSpec("spec.workerPools", f"two pools are named {name!r}")
    for index, item in enumerate(env):
        if item.get("name") in POOL_ENV:
            raise InvalidSpec(
                f"spec.django.env[{index}].name",
                f"{item.get('name')} is set per pool from spec.workerPools",
            )
    owner: dict[str, str] = {}
    for pool in pools:
        for channel in pool.channels:
            if channel in owner:
                raise InvalidSpec(
                    "spec.workerPools",
                    f"overlapping pools: channel {channel!r} is in pools {owner[channel]!r} "
                    f"and {pool.name!r}; each channel must be taken by one pool",
                )
            owner[channel] = str(pool.name)
    rest = [pool for pool in pools if not pool.channels]
    if len(rest) > 1:
        raise InvalidSpec(
            "spec.workerPools",
            f"overlapping pools: {rest[0].name!r} and {rest[1].name!r} both take every channel "
            "no other pool lists; give all but one of them channels",
        )
    if not rest:
        raise InvalidSpec(
            "spec.workerPools",
            "uncovered channels: every pool lists channels, so a channel none of them lists "
            "would never be taken; leave channels out of one pool (it takes the rest)",
        )
    uncovered = sorted(set(rest[0].exclude) - set(owner))
    if uncovered:
        raise InvalidSpec(
            f"spec.workerPools[{pools.index(rest[0])}].exclude",
            f"uncovered channels: {', '.join(uncovered)} excluded from pool {rest[0].name!r} "
            "and taken by no other pool: their messages would never be taken",
        )
    everything_else = tuple(sorted(owner))
    return tuple(
        pool if pool.channels else dataclasses.replace(pool, exclude=everything_else)
        for pool in pools
    )


def _redis(fields: _Fields) -> RedisSpec:
    mode = fields.choice("mode", "cluster", REDIS_MODES)
    url = fields.text("url")
    if mode == "external" and not url:
        raise InvalidSpec(f"{fields.path}.url", "mode external needs a url")
    if mode != "external" and url:
        raise InvalidSpec(f"{fields.path}.url", "is only used with mode external")
    if url and not _URL.match(url):
        raise InvalidSpec(f"{fields.path}.url", "must be a redis://, rediss:// or +cluster URL")
    if url and _URL_USERINFO.match(url):
        raise InvalidSpec(
            f"{fields.path}.url",
            "must not hold a user or password (it would be copied in plain text into every pod "
            "spec): put the password in a Secret and name it in passwordSecretRef",
        )
    if mode != "cluster" and (fields.has("shards") or fields.has("replicasPerShard")):
        raise InvalidSpec(f"{fields.path}.shards", "shards and replicasPerShard need mode cluster")
    shards = fields.integer("shards", DEFAULT_SHARDS, 3, 64)
    replicas = fields.integer("replicasPerShard", DEFAULT_REPLICAS_PER_SHARD, 0, 5)
    if mode == "cluster" and shards * (1 + replicas) > MAX_CLUSTER_NODES:
        raise InvalidSpec(f"{fields.path}.shards", f"more than {MAX_CLUSTER_NODES} Redis nodes")
    if mode == "external" and fields.has("storage"):
        raise InvalidSpec(f"{fields.path}.storage", "applies only to modes cluster and standalone")
    password_ref = None
    if fields.has("passwordSecretRef"):
        ref = fields.sub("passwordSecretRef")
        password_ref = SecretKeyRef(ref.required_text("name"), ref.text("key") or "password")
    storage = fields.sub("storage")
    return RedisSpec(
        mode=mode,
        shards=shards,
        replicas_per_shard=replicas,
        url=url,
        password_ref=password_ref,
        image=fields.text("image"),
        resources=fields.json_object("resources"),
        storage=StorageSpec(
            ephemeral=storage.boolean("ephemeral", False),
            size=storage.quantity("size", "1Gi"),
            storage_class=storage.text("storageClassName"),
            when_deleted=storage.choice("whenDeleted", "Delete", RETENTION),
            when_scaled=storage.choice("whenScaled", "Retain", RETENTION),
        ),
    )


def _migrate(fields: _Fields) -> MigrateSpec:
    command = fields.data.get("command")
    if command is None:
        command = list(DEFAULT_MIGRATE_COMMAND)
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        raise InvalidSpec(f"{fields.path}.command", "must be a list of non-empty strings")
    return MigrateSpec(
        enabled=fields.boolean("enabled", True),
        command=tuple(command),
        timeout_seconds=fields.integer("timeoutSeconds", 600, 30, 86400),
        ttl_seconds_after_finished=fields.integer("ttlSecondsAfterFinished", 3600, 60, 604800),
    )


def _secret_key_ref(django: _Fields) -> SecretKeyRef | None:
    if not django.has("secretKeySecretRef"):
        return None
    ref = django.sub("secretKeySecretRef")
    return SecretKeyRef(ref.required_text("name"), ref.text("key") or "DJANGO_SECRET_KEY")


def _ref(body: Mapping[str, Any]) -> AppRef:
    meta = _Fields(body.get("metadata"), "metadata")
    name = meta.required_text("name")
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise InvalidSpec(
            "metadata.name",
            f"must be at most {MAX_NAME_LENGTH} lowercase letters, digits and '-', "
            "starting with a letter",
        )
    generation = meta.data.get("generation", 0)
    return AppRef(
        name=name,
        namespace=meta.required_text("namespace"),
        uid=meta.text("uid") or "",
        generation=generation if isinstance(generation, int) else 0,
    )


def parse(body: Mapping[str, Any]) -> App:
    """Parse a RealtimeApp (the whole object: metadata and spec) into an ``App``."""
    ref = _ref(body)
    spec = _Fields(body.get("spec"), "spec")
    django = spec.sub("django")
    settings_module = django.text("settingsModule")
    if settings_module is not None and not _MODULE.match(settings_module):
        raise InvalidSpec("spec.django.settingsModule", "must be a dotted Python module path")
    pull_policy = spec.text("imagePullPolicy")
    if pull_policy is not None and pull_policy not in PULL_POLICIES:
        raise InvalidSpec("spec.imagePullPolicy", f"must be one of {', '.join(PULL_POLICIES)}")
    pull_secrets = tuple(
        str(item.get("name")) for item in spec.objects("imagePullSecrets") if item.get("name")
    )
    layer = spec.sub("channelLayer")
    monitoring = spec.sub("monitoring")
    django_env = _env(django, "env")
    app = App(
        ref=ref,
        image=spec.required_text("image"),
        image_pull_policy=pull_policy,
        image_pull_secrets=pull_secrets,
        service_account=spec.text("serviceAccountName"),
        settings_module=settings_module,
        django_env=django_env,
        django_env_from=django.objects("envFrom"),
        interface=_interface(spec.sub("interface")),
        worker=_worker(spec.sub("worker")),
        channel_layer=ChannelLayerSpec(
            capacity=layer.integer("capacity", 100, 1, 1_000_000),
            expiry=layer.integer("expiry", 60, 1, 86400),
            redis=_redis(layer.sub("redis")),
            work_shards=(
                layer.integer("workShards", DEFAULT_WORK_SHARDS, 1, MAX_WORK_SHARDS)
                if layer.has("workShards")
                else None
            ),
        ),
        network_policy=spec.sub("networkPolicy").boolean("enabled", True),
        adopt_existing=spec.boolean("adoptExisting", False),
        migrate=_migrate(django.sub("migrate")),
        django_secret_key=_secret_key_ref(django),
        worker_pools=_pools(spec, settings_module, django_env),
        monitoring=MonitoringSpec(
            enabled=monitoring.boolean("enabled", True),
            kind=monitoring.choice("kind", "PodMonitor", MONITOR_KINDS),
            interval=monitoring.text("interval", "30s") or "30s",
            labels=monitoring.string_map("labels"),
        ),
    )
    layer_spec = dataclasses.replace(app.channel_layer, auto_shards=auto_work_shards(app.pools))
    return dataclasses.replace(app, channel_layer=layer_spec)
