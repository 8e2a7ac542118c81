console.log("hello from the kibaship node fixture");
