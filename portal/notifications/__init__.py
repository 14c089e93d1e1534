"""Everything that leaves the portal: emails composed into the outbox, webhooks, the
reactions that turn domain events into both, the queue that sends them after commit, and
the one retry policy they share."""
