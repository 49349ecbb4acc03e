"""The sample run behind ``make run``: a generated contact list, the DNS its domains need, and
a driver that uploads it and follows the job to the end."""
