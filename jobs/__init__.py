"""RQ job functions (`verb_noun(ids…)`, ids only, never ORM objects) and the agent provider adapters."""
