"""Running the platform (运维): backup and restore of a consistent set — database, evidence, keys (#23).

Above every slice (it saves what all of them hold) and below the surfaces that start it (`fcx backup`,
`fcx restore`, the scheduled backup in `fcx serve`'s jobs loop).
"""
