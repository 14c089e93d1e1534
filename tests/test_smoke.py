from portal.models import DeliverableState


def test_each_state_can_be_built(make_deliverable):
    for state in DeliverableState:
        assert make_deliverable(state).state == state
