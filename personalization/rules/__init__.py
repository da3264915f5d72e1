"""Rule segments: a condition builder over customers, compiled to SQL, with dynamic or static members."""
