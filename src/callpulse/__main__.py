from callpulse.cli import main

if __name__ == "__main__":  # (not when a spawned process imports this as its parent's main)
    main()
