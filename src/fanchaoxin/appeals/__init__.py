"""Due process: objections (异议), restoration (恢复信誉), credit repair (信用修复), reports (举报).

- `cases`: what every case shares — tracking numbers and secrets, finding a case, proving the
  subject, one open case per entry, the identity check;
- `objections`, `repair`, `reports`: each kind of case — filing, deciding, deadlines, lists;
- `corrections`: the public correction notice of every revoked entry;
- `attachments`: files attached to a case;
- `notify`: mail to the filer, sent after commit; `ratelimit`: the public forms' budgets;
- `views`, `schemas`, `cli`, `templates/`: the API, its bodies, `fcx appeals`, the HTML pages.

What a case does to its entry (dispute, correction, revocation, repair) is `workflows.appeals`.
"""
