from tap_zendesk_chat import main

main()
