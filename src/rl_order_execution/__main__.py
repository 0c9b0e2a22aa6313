from rl_order_execution.cli import main

main()
