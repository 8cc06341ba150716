"""Union organisations (工会组织): county → township → village, enterprise and system unions."""
