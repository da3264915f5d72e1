"""REST API of rule segments: /api/v1/rule-segments/."""
