/* placeholder: being written */ typedef int rc_placeholder_data_text;
