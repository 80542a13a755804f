from kortext.cli import main

main(prog_name="python -m kortext")
