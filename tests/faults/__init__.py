"""The load-and-fault harness of tests/test_faults.py and benchmarks/soak.py (issue 10, §4).

``apps`` builds the served applications, ``receivers`` the faulty receivers and what they
record, ``servers`` runs a server in a thread of its own, ``load`` drives it over HTTP and
``scenario`` puts them together.
"""
