"""The worker process (`python -m workers.run`): builds the runtime and drains the priority
queues. Top of the house: it imports the layers below, nothing imports it."""
