"""The CRM as the record: won deals and accounts from HubSpot and Salesforce.

Plain code, no Slack: ``hubspot`` and ``salesforce`` are httpx clients for each API, ``model`` the
neutral ``WonDeal`` both map to and its handoff-form prefill, ``sync`` one pass (won deals once each,
accounts through ``ingest``), ``webhook`` HubSpot's signed deliveries, ``cli`` `app.py crm sync`."""
