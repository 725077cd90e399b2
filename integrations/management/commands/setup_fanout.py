import json

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from integrations import cloudformation, fanout


class Command(BaseCommand):
    help = (
        "Create the SNS topic and, per enabled integration, its SQS queue, dead-letter "
        "queue, queue policy and filtered subscription. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true",
            help="Print the plan and change nothing.",
        )
        parser.add_argument(
            "--format", choices=["text", "cloudformation"], default="text",
            dest="output_format",
            help="'cloudformation' prints a CloudFormation template (JSON) of the "
            "same resources and changes nothing; 'text' (default) creates them.",
        )

    def handle(self, *args, dry_run, output_format, **options):
        try:
            plan = fanout.build_plan()
            if output_format == "cloudformation":
                self.stdout.write(cloudformation.render(plan))
                return
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error
        if dry_run:
            self.print_plan(plan)
            return
        try:
            plan = fanout.apply(plan)
        except (BotoCoreError, ClientError) as error:
            raise CommandError(f"AWS call failed while creating the fan-out: {error}") from error
        self.stdout.write(f"topic      {plan.topic_arn}")
        for queue in plan.queues:
            self.stdout.write(f"{queue.integration}:")
            self.stdout.write(f"  queue          {queue.queue_url}")
            self.stdout.write(f"  queue arn      {queue.queue_arn}")
            self.stdout.write(f"  dead-letter    {queue.dlq_url}")
            self.stdout.write(f"  subscription   {queue.subscription_arn}")
            self.stdout.write(f"  filter policy  {json.dumps(queue.filter_policy)}")
        self.stdout.write(self.style.SUCCESS("fan-out ready"))

    def print_plan(self, plan):
        self.stdout.write(f"would ensure topic {plan.topic_name} (FIFO: {plan.fifo})")
        for queue in plan.queues:
            self.stdout.write(
                f"would ensure queue {queue.queue_name} with dead-letter queue "
                f"{queue.dlq_name} (maxReceiveCount {queue.max_receive_count}, "
                f"attributes {json.dumps(queue.queue_attributes, sort_keys=True)})"
            )
            self.stdout.write(
                f"would subscribe {queue.queue_name} with filter policy "
                f"{json.dumps(queue.filter_policy)}"
            )
