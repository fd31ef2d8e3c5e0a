from fanchaoxin.cli import app

app()
