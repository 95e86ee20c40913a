"""What a researcher reads: tables, figures, the HTML report, the memo, the ledger."""
