"""Statistics: aggregate figures on the blacklist, joint punishment and due process (统计).

The action plan asks the platform for periodic aggregate figures on punishment results, for
publication. `service` computes them in SQL (GROUP BY, on SQLite and PostgreSQL alike); `views`
serves them as JSON, CSV and XLSX under `/v1/stats`; `cli` renders the monthly report
(`fcx report monthly`) as printable HTML and PDF.
"""
