"""Regular consultation (定期会商机制, action plan 三(二)): meetings of the platform with the participating
enterprises and departments, agenda items any participant raises, minutes, decisions, attendance, and
action items tracked to closure in PRC working days."""
