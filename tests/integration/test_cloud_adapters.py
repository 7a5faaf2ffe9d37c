"""The production adapters: Cloud Scheduler against a local gRPC test double (there is no emulator)
that asserts the exact requests; Pub/Sub against Google's emulator."""

import json
from concurrent import futures

import grpc
import pytest
from google.cloud import scheduler_v1
from google.cloud.scheduler_v1.services.cloud_scheduler.transports import CloudSchedulerGrpcTransport

from etlwizard.schedulers import CloudScheduler
from etlwizard.scheduling import Schedule

SERVICE = "google.cloud.scheduler.v1.CloudScheduler"


def unary(requests: list, name: str, request_type, respond):
    """A gRPC method that records its request and answers with respond(request, context)."""

    def call(request, context):
        requests.append((name, request))
        return respond(request, context)

    return grpc.unary_unary_rpc_method_handler(
        call,
        request_deserializer=request_type.deserialize,
        response_serializer=lambda m: (
            m.SerializeToString() if hasattr(m, "SerializeToString") else type(m).serialize(m)
        ),
    )


class SchedulerDouble:
    """Cloud Scheduler's gRPC surface, keeping jobs in a dict and every request in a list."""

    def __init__(self):
        self.jobs: dict[str, scheduler_v1.Job] = {}
        self.requests: list[tuple[str, object]] = []

    def handler(self):
        r = self.requests
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateJob": unary(r, "CreateJob", scheduler_v1.CreateJobRequest, self.create),
                "UpdateJob": unary(r, "UpdateJob", scheduler_v1.UpdateJobRequest, self.update),
                "PauseJob": unary(
                    r, "PauseJob", scheduler_v1.PauseJobRequest, self.state(scheduler_v1.Job.State.PAUSED)
                ),
                "ResumeJob": unary(
                    r, "ResumeJob", scheduler_v1.ResumeJobRequest, self.state(scheduler_v1.Job.State.ENABLED)
                ),
                "DeleteJob": unary(r, "DeleteJob", scheduler_v1.DeleteJobRequest, self.delete),
            },
        )

    def create(self, request, context):
        job = scheduler_v1.Job(request.job)
        job.state = scheduler_v1.Job.State.ENABLED
        self.jobs[job.name] = job
        return job

    def update(self, request, context):
        if request.job.name not in self.jobs:
            context.abort(grpc.StatusCode.NOT_FOUND, "job not found")
        job = scheduler_v1.Job(request.job)
        job.state = self.jobs[job.name].state
        self.jobs[job.name] = job
        return job

    def state(self, value):
        def change(request, context):
            if request.name not in self.jobs:
                context.abort(grpc.StatusCode.NOT_FOUND, "job not found")
            self.jobs[request.name].state = value
            return self.jobs[request.name]

        return change

    def delete(self, request, context):
        if self.jobs.pop(request.name, None) is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "job not found")
        from google.protobuf import empty_pb2

        return empty_pb2.Empty()


@pytest.fixture
def scheduler_double():
    double = SchedulerDouble()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((double.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = scheduler_v1.CloudSchedulerClient(
        transport=CloudSchedulerGrpcTransport(channel=grpc.insecure_channel(f"127.0.0.1:{port}"))
    )
    yield double, CloudScheduler("my-project", "europe-west1", "etl-run-job", client=client)
    server.stop(None)


def test_cloud_scheduler_requests(scheduler_double):
    double, scheduler = scheduler_double
    name = "projects/my-project/locations/europe-west1/jobs/etl-abc123"
    scheduler.upsert("abc123", Schedule(type="weekly", time="06:15", day_of_week="mon", timezone="Europe/Berlin"))

    (update_name, _), (create_name, create) = double.requests
    assert (update_name, create_name) == ("UpdateJob", "CreateJob")  # update first, create when absent
    assert create.parent == "projects/my-project/locations/europe-west1"
    assert create.job.name == name
    assert create.job.schedule == "15 6 * * 1"
    assert create.job.time_zone == "Europe/Berlin"
    assert create.job.pubsub_target.topic_name == "projects/my-project/topics/etl-run-job"
    assert json.loads(create.job.pubsub_target.data) == {"job_id": "abc123", "trigger": "schedule"}
    assert dict(create.job.pubsub_target.attributes) == {"job_id": "abc123"}

    scheduler.upsert("abc123", Schedule(type="daily", time="01:00", timezone="UTC"), paused=True)
    assert [n for n, _ in double.requests[2:]] == ["UpdateJob", "PauseJob"]
    assert double.jobs[name].schedule == "0 1 * * *"
    assert double.jobs[name].state == scheduler_v1.Job.State.PAUSED

    scheduler.resume("abc123")
    assert double.jobs[name].state == scheduler_v1.Job.State.ENABLED
    scheduler.delete("abc123")
    scheduler.delete("abc123")  # already gone: not an error
    assert double.jobs == {}

    scheduler.upsert("abc123", Schedule(type="manual"))  # manual: no scheduler job at all
    assert double.requests[-1][0] == "DeleteJob" and double.jobs == {}


def test_pubsub_publisher_sends_the_run_message(pubsub_emulator):
    from google.cloud import pubsub_v1

    from etlwizard.dispatch import PubSubPublisher
    from etlwizard.run.state import RunMessage

    project = "pubsub-test"
    publisher_client = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher_client.topic_path(project, "etl-run-job")
    subscription = subscriber.subscription_path(project, "run-job")
    publisher_client.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    publisher = PubSubPublisher(project, "etl-run-job", client=publisher_client)
    message_id = publisher.publish(RunMessage("job-1", "manual").to_bytes())

    response = subscriber.pull(subscription=subscription, max_messages=10, timeout=30)
    assert [m.message.message_id for m in response.received_messages] == [message_id]
    message = response.received_messages[0].message
    assert json.loads(message.data) == {"job_id": "job-1", "trigger": "manual"}
    assert dict(message.attributes) == {"job_id": "job-1"}


class SecretManagerDouble:
    """Secret Manager's gRPC surface over a dict; every request kept."""

    SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

    def __init__(self):
        self.secrets: dict[str, list[bytes]] = {}
        self.requests = []

    def handler(self):
        from google.cloud import secretmanager_v1 as sm
        from google.protobuf import empty_pb2

        def create(request, context):
            name = f"{request.parent}/secrets/{request.secret_id}"
            if name in self.secrets:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "exists")
            self.secrets[name] = []
            return sm.Secret(name=name)

        def add(request, context):
            self.secrets[request.parent].append(request.payload.data)
            return sm.SecretVersion(name=f"{request.parent}/versions/{len(self.secrets[request.parent])}")

        def access(request, context):
            secret = request.name.rsplit("/versions/", 1)[0]
            if not self.secrets.get(secret):
                context.abort(grpc.StatusCode.NOT_FOUND, "no such secret")
            return sm.AccessSecretVersionResponse(name=request.name, payload={"data": self.secrets[secret][-1]})

        def delete(request, context):
            if self.secrets.pop(request.name, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "no such secret")
            return empty_pb2.Empty()

        r = self.requests
        return grpc.method_handlers_generic_handler(
            self.SERVICE,
            {
                "CreateSecret": unary(r, "CreateSecret", sm.CreateSecretRequest, create),
                "AddSecretVersion": unary(r, "AddSecretVersion", sm.AddSecretVersionRequest, add),
                "AccessSecretVersion": unary(r, "AccessSecretVersion", sm.AccessSecretVersionRequest, access),
                "DeleteSecret": unary(r, "DeleteSecret", sm.DeleteSecretRequest, delete),
            },
        )


def test_secret_manager_store_requests():
    from google.cloud import secretmanager_v1 as sm
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    from etlwizard.errors import NotFound
    from etlwizard.secrets import SecretManagerStore

    double = SecretManagerDouble()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((double.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = sm.SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(f"127.0.0.1:{port}"))
        )
        store = SecretManagerStore("my-project", client=client)
        store.put("etl-connection-abc", "s3cret")
        store.put("etl-connection-abc", "")  # rotated to an empty password: a new version
        assert store.get("etl-connection-abc") == ""

        name, create = double.requests[0]
        assert name == "CreateSecret"
        assert (create.parent, create.secret_id) == ("projects/my-project", "etl-connection-abc")
        assert create.secret.replication.automatic is not None and dict(create.secret.labels) == {"app": "etl-wizard"}
        name, add = double.requests[1]
        assert (name, add.parent) == ("AddSecretVersion", "projects/my-project/secrets/etl-connection-abc")
        assert json.loads(add.payload.data) == {"value": "s3cret"}
        assert double.requests[-1][1].name == "projects/my-project/secrets/etl-connection-abc/versions/latest"

        store.delete("etl-connection-abc")
        store.delete("etl-connection-abc")  # already gone: not an error
        with pytest.raises(NotFound):
            store.get("etl-connection-abc")
    finally:
        server.stop(None)
