print("hello from the kibaship python fixture")
